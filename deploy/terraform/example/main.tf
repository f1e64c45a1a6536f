# An example root module: flowguard on a VPC's flow-log log group, with
# the error alarm mailed to the security team.
#
#   make lambda                       # dist/flowguard-VERSION-lambda-arm64.zip
#   flowguard iam-policy --config flowguard.yaml > iam-policy.json
#   terraform init && terraform apply -var lambda_zip=../../../dist/flowguard-v1.0.0-lambda-arm64.zip

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "Region of the VPC and its flow logs."
  type        = string
  default     = "us-east-1"
}

variable "lambda_zip" {
  description = "Path of the release's Lambda package."
  type        = string
}

module "flowguard" {
  source = "../"

  lambda_zip            = var.lambda_zip
  architecture          = "arm64"
  config_yaml           = file("${path.module}/flowguard.yaml")
  responder_policy_json = file("${path.module}/iam-policy.json")
  flow_log_group        = "/vpc/flow-logs"
  alert_emails          = ["security@example.com"]
}

output "function_name" {
  description = "The function."
  value       = module.flowguard.function_name
}

output "table_name" {
  description = "Where the findings are."
  value       = module.flowguard.table_name
}
