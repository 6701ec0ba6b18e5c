# want: generated lists are limited to 100000
# want: widths and precisions in format strings are limited
domain = "meet.example.com"
auth "anonymous" {}
locals {
  many = range(1000000000)
  wide = format("%0999999999d", 1)
}
