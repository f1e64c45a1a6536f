output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.flowguard.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.flowguard.arn
}

output "role_arn" {
  description = "ARN of the function's role."
  value       = aws_iam_role.flowguard.arn
}

output "table_name" {
  description = "DynamoDB table holding findings, windows and checkpoints."
  value       = aws_dynamodb_table.state.name
}

output "topic_arn" {
  description = "SNS topic of the error alarm (and of notify.sns in the configuration, if you point it there)."
  value       = aws_sns_topic.alerts.arn
}

output "queue_url" {
  description = "SQS queue of the bucket's notifications (empty without flow_log_bucket)."
  value       = one(aws_sqs_queue.events[*].url)
}

output "dead_letter_queue_arn" {
  description = "Dead-letter queue of messages the function failed on maxReceiveCount times (empty without flow_log_bucket)."
  value       = one(aws_sqs_queue.dead_letters[*].arn)
}

output "config_parameter" {
  description = "SSM parameter holding the configuration."
  value       = aws_ssm_parameter.config.name
}
