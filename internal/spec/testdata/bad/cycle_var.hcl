# want: No value for required variable
# want: JITSI_AGENT_VAR_domain
variable "domain" {}
domain = var.domain
auth "anonymous" {}
