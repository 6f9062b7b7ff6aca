# SES sends the notification mails unless the company's own SMTP server is given (smtp_url).
locals {
  mail_domain = element(split("@", trimsuffix(var.mail_from, ">")), 1)
  use_ses     = var.smtp_url == ""
}

resource "aws_ses_domain_identity" "mail" {
  count  = local.use_ses ? 1 : 0
  domain = local.mail_domain
}

resource "aws_ses_domain_dkim" "mail" {
  count  = local.use_ses ? 1 : 0
  domain = aws_ses_domain_identity.mail[0].domain
}
