# Bugzot on AWS: a VPC, an Application Load Balancer in front of an auto-scaling group of app instances (each
# running `bugzot serve` with WORKERS processes and a `bugzot worker`), RDS PostgreSQL, ElastiCache Redis, an S3
# bucket for attachments, and SES for mail.
#   terraform init && terraform apply -var domain=bugs.example.com -var certificate_arn=arn:aws:acm:...
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Application = "bugzot"
      Environment = var.environment
    }
  }
}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  name = "bugzot-${var.environment}"
  azs  = slice(data.aws_availability_zones.available.names, 0, var.az_count)
}
