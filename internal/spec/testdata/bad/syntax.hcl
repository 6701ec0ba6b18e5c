# want: Error: Invalid expression
# want: syntax.hcl:4:
domain = "meet.example.com"
auth "jwt" { app_id = }
