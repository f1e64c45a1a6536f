# flowguard as a Lambda function: the function (from a release zip), its
# role (exactly `flowguard iam-policy --lambda-table …`), its DynamoDB
# table (TTL on), its triggers (a subscription filter, S3 notifications
# through SQS with a dead-letter queue, a schedule), the configuration in
# SSM, an SNS topic with e-mail subscriptions and an alarm on errors.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account     = data.aws_caller_identity.current.account_id
  region      = data.aws_region.current.name
  use_bucket  = var.flow_log_bucket != ""
  use_logs    = var.flow_log_group != ""
  use_sched   = length(var.scan_targets) > 0
  read_bucket = distinct(compact(concat([var.flow_log_bucket], var.scan_buckets)))
}

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_dynamodb_table" "state" {
  name         = var.name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
  point_in_time_recovery {
    enabled = true
  }
  tags = var.tags
}

resource "aws_ssm_parameter" "config" {
  name  = "/${var.name}/config"
  type  = "String"
  tier  = length(var.config_yaml) > 4096 ? "Advanced" : "Standard"
  value = var.config_yaml
  tags  = var.tags
}

resource "aws_lambda_function" "flowguard" {
  function_name    = var.name
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = [var.architecture]
  memory_size      = var.memory_mb
  timeout          = var.timeout_seconds
  role             = aws_iam_role.flowguard.arn

  environment {
    variables = {
      FLOWGUARD_TABLE      = aws_dynamodb_table.state.name
      FLOWGUARD_CONFIG_SSM = aws_ssm_parameter.config.name
      FLOWGUARD_WINDOW     = var.window
      FLOWGUARD_SCAN       = join(",", var.scan_targets)
      FLOWGUARD_SCAN_LAST  = "${var.scan_every_minutes + 5}m"
    }
  }
  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function.name
  }
  tags = var.tags
}

# Trigger 1: a subscription filter on the flow-log log group.
resource "aws_lambda_permission" "logs" {
  count         = local.use_logs ? 1 : 0
  statement_id  = "AllowCloudWatchLogs"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.flowguard.function_name
  principal     = "logs.amazonaws.com"
  source_arn    = "arn:${data.aws_partition.current.partition}:logs:${local.region}:${local.account}:log-group:${var.flow_log_group}:*"
}

resource "aws_cloudwatch_log_subscription_filter" "flow_logs" {
  count           = local.use_logs ? 1 : 0
  name            = var.name
  log_group_name  = var.flow_log_group
  filter_pattern  = ""
  destination_arn = aws_lambda_function.flowguard.arn
  depends_on      = [aws_lambda_permission.logs]
}

# Trigger 2: S3 ObjectCreated notifications through SQS, with a
# dead-letter queue for messages that keep failing.
resource "aws_sqs_queue" "dead_letters" {
  count                     = local.use_bucket ? 1 : 0
  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600
  tags                      = var.tags
}

resource "aws_sqs_queue" "events" {
  count                      = local.use_bucket ? 1 : 0
  name                       = "${var.name}-events"
  visibility_timeout_seconds = var.timeout_seconds * 6
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters[0].arn
    maxReceiveCount     = 5
  })
  tags = var.tags
}

resource "aws_sqs_queue_policy" "events" {
  count     = local.use_bucket ? 1 : 0
  queue_url = aws_sqs_queue.events[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AllowS3Notifications"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.events[0].arn
      Condition = {
        ArnEquals    = { "aws:SourceArn" = "arn:${data.aws_partition.current.partition}:s3:::${var.flow_log_bucket}" }
        StringEquals = { "aws:SourceAccount" = local.account }
      }
    }]
  })
}

resource "aws_s3_bucket_notification" "flow_logs" {
  count  = local.use_bucket ? 1 : 0
  bucket = var.flow_log_bucket
  queue {
    queue_arn     = aws_sqs_queue.events[0].arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = var.flow_log_prefix
  }
  depends_on = [aws_sqs_queue_policy.events]
}

resource "aws_lambda_event_source_mapping" "events" {
  count                              = local.use_bucket ? 1 : 0
  event_source_arn                   = aws_sqs_queue.events[0].arn
  function_name                      = aws_lambda_function.flowguard.arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 30
  function_response_types            = ["ReportBatchItemFailures"]
}

# Trigger 3: a schedule that scans the last minutes.
resource "aws_cloudwatch_event_rule" "schedule" {
  count               = local.use_sched ? 1 : 0
  name                = "${var.name}-scan"
  schedule_expression = "rate(${var.scan_every_minutes} minutes)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "schedule" {
  count = local.use_sched ? 1 : 0
  rule  = aws_cloudwatch_event_rule.schedule[0].name
  arn   = aws_lambda_function.flowguard.arn
}

resource "aws_lambda_permission" "schedule" {
  count         = local.use_sched ? 1 : 0
  statement_id  = "AllowSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.flowguard.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[0].arn
}

# Alerts: an SNS topic with e-mail subscriptions, and an alarm on the
# function's errors.
resource "aws_sns_topic" "alerts" {
  name = "${var.name}-alerts"
  tags = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.name}-errors"
  alarm_description   = "flowguard's Lambda function failed (see its log group)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.flowguard.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
  tags                = var.tags
}
