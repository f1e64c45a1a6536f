variable "name" {
  description = "Name of the function, and prefix of every resource the module creates."
  type        = string
  default     = "flowguard"
}

variable "lambda_zip" {
  description = "Path of the release's Lambda package (flowguard-VERSION-lambda-ARCH.zip, holding the bootstrap binary)."
  type        = string
}

variable "architecture" {
  description = "The package's architecture: arm64 (cheaper per GB-second) or x86_64."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_mb" {
  description = "Memory of the function, in MB (CPU grows with it)."
  type        = number
  default     = 512
}

variable "timeout_seconds" {
  description = "Timeout of one invocation."
  type        = number
  default     = 300
}

variable "config_yaml" {
  description = "flowguard's configuration (the YAML of flowguard.yaml), stored in an SSM parameter the function reads at cold start."
  type        = string
  default     = "{}"
}

variable "window" {
  description = "Detection window: inputs of the same window are judged together (FLOWGUARD_WINDOW)."
  type        = string
  default     = "10m"
}

variable "flow_log_group" {
  description = "Trigger 1: the CloudWatch Logs log group VPC Flow Logs publish to; a subscription filter sends its events to the function. Empty: none."
  type        = string
  default     = ""
}

variable "flow_log_bucket" {
  description = "Trigger 2: the S3 bucket VPC Flow Logs deliver to; its ObjectCreated notifications reach the function through an SQS queue with a dead-letter queue. Empty: none."
  type        = string
  default     = ""
}

variable "flow_log_prefix" {
  description = "Key prefix of the flow log objects in flow_log_bucket (AWSLogs/ by default)."
  type        = string
  default     = "AWSLogs/"
}

variable "scan_targets" {
  description = "Trigger 3: what a schedule scans, for users without a subscription or notifications: s3://bucket/prefix and logs:LOG-GROUP entries. Empty: no schedule."
  type        = list(string)
  default     = []
}

variable "scan_every_minutes" {
  description = "How often the schedule runs; each run scans the last scan_every_minutes + 5 minutes."
  type        = number
  default     = 10
}

variable "scan_buckets" {
  description = "Buckets of the s3:// scan targets (for the function's read permission)."
  type        = list(string)
  default     = []
}

variable "scan_log_groups" {
  description = "Log groups of the logs: scan targets (for the function's FilterLogEvents permission)."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the SNS topic that receives the function's error alarm (each confirms by mail)."
  type        = list(string)
  default     = []
}

variable "responder_policy_json" {
  description = "The responders' statements: the output of `flowguard iam-policy --config flowguard.yaml` (empty when the configuration has no response: or notify: section)."
  type        = string
  default     = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
}

variable "log_retention_days" {
  description = "Retention of the function's own log group."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
