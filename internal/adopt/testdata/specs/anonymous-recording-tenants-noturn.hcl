domain  = "video.example.org"
tenants = true
auth "anonymous" {}
meeting {
  lobby = false
  recording {
    enabled         = true
    livestreaming   = true
    trusted_domains = ["jibri.example.org"]
    whitelist       = ["sip.example.org"]
    pending_timeout = "2m"
  }
}
turn { enabled = false }
