// Evaluates rendered config.js files as a browser would (a fresh global
// context) and prints { NAME: config } as JSON, or { NAME: { __error } }.
// Run: node configjs.js LIST.json   (LIST: [{ "name": ..., "file": ... }])
const fs = require('fs');
const vm = require('vm');
const list = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const { name, file } of list) {
    try {
        const ctx = {};
        vm.runInNewContext(fs.readFileSync(file, 'utf8') + '\n;this.__cfg = config;', ctx, { filename: file });
        out[name] = ctx.__cfg;
    } catch (e) {
        out[name] = { __error: String(e) };
    }
}
process.stdout.write(JSON.stringify(out));
