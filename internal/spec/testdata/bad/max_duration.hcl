# want: Jitsi cannot limit meeting duration
# want: mod_reservations
# want: Jitsi cannot end a meeting when the host leaves
domain = "meet.example.com"
auth "anonymous" {}
meeting {
  max_duration         = "1h"
  end_when_host_leaves = true
}
