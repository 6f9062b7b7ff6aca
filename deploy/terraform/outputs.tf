output "load_balancer_dns_name" {
  description = "Point the domain's DNS (CNAME or alias) here"
  value       = aws_lb.main.dns_name
}

output "database_endpoint" {
  description = "RDS PostgreSQL address"
  value       = aws_db_instance.main.address
}

output "database_url_secret_arn" {
  description = "Secrets Manager secret holding DATABASE_URL"
  value       = aws_secretsmanager_secret.database_url.arn
}

output "redis_endpoint" {
  description = "ElastiCache primary endpoint (REDIS_URL host)"
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "attachments_bucket" {
  description = "S3 bucket of attachments (S3_BUCKET)"
  value       = aws_s3_bucket.attachments.bucket
}

output "ses_dkim_tokens" {
  description = "CNAME records to publish for SES DKIM (empty when the company's SMTP server is used)"
  value       = local.use_ses ? aws_ses_domain_dkim.mail[0].dkim_tokens : []
}
