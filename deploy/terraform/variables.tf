variable "region" {
  description = "AWS region"
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Name of this deployment (prod, staging ...), part of every resource name"
  type        = string
  default     = "prod"
}

variable "domain" {
  description = "Public host name of Bugzot (BASE_URL is https://<domain>)"
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the domain, used by the load balancer"
  type        = string
}

variable "vpc_cidr" {
  description = "Address range of the VPC"
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread over (2 or 3)"
  type        = number
  default     = 2
}

variable "release_url" {
  description = "URL of the Bugzot release tarball the instances install"
  type        = string
}

variable "bugzot_version" {
  description = "Release version, shown at /version"
  type        = string
  default     = "0.2.0"
}

variable "instance_type" {
  description = "EC2 type of the app instances"
  type        = string
  default     = "c7g.large"
}

variable "workers_per_instance" {
  description = "Web worker processes per instance (WORKERS); 0 means one per vCPU"
  type        = number
  default     = 0
}

variable "min_instances" {
  description = "Smallest size of the app group"
  type        = number
  default     = 2
}

variable "max_instances" {
  description = "Largest size of the app group"
  type        = number
  default     = 8
}

variable "cpu_target_percent" {
  description = "Average CPU the group scales to"
  type        = number
  default     = 55
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class"
  type        = string
  default     = "db.r7g.large"
}

variable "db_allocated_storage_gb" {
  description = "Initial database storage; it grows automatically up to 10x"
  type        = number
  default     = 100
}

variable "db_multi_az" {
  description = "A standby in a second zone"
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "ElastiCache node type"
  type        = string
  default     = "cache.r7g.large"
}

variable "mail_from" {
  description = "From address of notification mails (its domain is verified in SES)"
  type        = string
}

variable "smtp_url" {
  description = "The company's SMTP server (smtp[s]://user@host:port); empty to send through SES"
  type        = string
  default     = ""
}
