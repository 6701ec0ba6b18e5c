// Loads HOCON files with Typesafe Config, as jicofo and the videobridge do,
// and prints each resolved file as one line: FILE<TAB>concise JSON. Every
// "*-timeout" value is also read as a duration: FILE<TAB>DURATION<TAB>path<TAB>millis.
// A file that fails prints FILE<TAB>ERROR<TAB>message and the exit code is 1.
// Run: java -cp /usr/share/java/typesafe-config.jar Check.java FILE...
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigRenderOptions;
import java.io.File;
import java.util.Map;

public class Check {
    public static void main(String[] args) {
        int rc = 0;
        for (String f : args) {
            try {
                Config c = ConfigFactory.parseFile(new File(f), ConfigParseOptions.defaults().setAllowMissing(false)).resolve();
                System.out.println(f + "\t" + c.root().render(ConfigRenderOptions.concise()));
                for (Map.Entry<String, com.typesafe.config.ConfigValue> e : c.entrySet()) {
                    if (e.getKey().endsWith("-timeout")) {
                        System.out.println(f + "\tDURATION\t" + e.getKey() + "\t" + c.getDuration(e.getKey()).toMillis());
                    }
                }
            } catch (Exception e) {
                System.out.println(f + "\tERROR\t" + e.getMessage().replace('\n', ' '));
                rc = 1;
            }
        }
        System.exit(rc);
    }
}
