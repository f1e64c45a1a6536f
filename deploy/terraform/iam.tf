# The function's role: exactly the statements
#   flowguard iam-policy --config flowguard.yaml --lambda-table NAME \
#     [--lambda-bucket B] [--lambda-queue ARN] [--lambda-scan-log-group G] \
#     --lambda-config-parameter /NAME/config
# prints, with this module's resources (cmd/flowguard/deploy_test.go evaluates
# the statements for a deployment and checks them, resources included).

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "flowguard" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "flowguard" {
  # The responders' statements, from `flowguard iam-policy --config`.
  source_policy_documents = [var.responder_policy_json]

  statement {
    sid       = "FlowguardFunctionLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  statement {
    sid       = "FlowguardState"
    effect    = "Allow"
    actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.state.arn]
  }

  dynamic "statement" {
    for_each = length(local.read_bucket) > 0 ? [1] : []
    content {
      sid       = "FlowguardReadFlowLogs"
      effect    = "Allow"
      actions   = ["s3:GetObject"]
      resources = [for b in local.read_bucket : "arn:${data.aws_partition.current.partition}:s3:::${b}/*"]
    }
  }

  dynamic "statement" {
    for_each = length(local.read_bucket) > 0 ? [1] : []
    content {
      sid       = "FlowguardListFlowLogs"
      effect    = "Allow"
      actions   = ["s3:ListBucket"]
      resources = [for b in local.read_bucket : "arn:${data.aws_partition.current.partition}:s3:::${b}"]
    }
  }

  dynamic "statement" {
    for_each = local.use_bucket ? [1] : []
    content {
      sid       = "FlowguardConsumeQueue"
      effect    = "Allow"
      actions   = ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
      resources = [aws_sqs_queue.events[0].arn]
    }
  }

  dynamic "statement" {
    for_each = length(var.scan_log_groups) > 0 ? [1] : []
    content {
      sid       = "FlowguardScanLogGroups"
      effect    = "Allow"
      actions   = ["logs:FilterLogEvents"]
      resources = [for g in var.scan_log_groups : "arn:${data.aws_partition.current.partition}:logs:${local.region}:${local.account}:log-group:${g}:*"]
    }
  }

  statement {
    sid       = "FlowguardReadConfig"
    effect    = "Allow"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.config.arn]
  }
}

resource "aws_iam_role_policy" "flowguard" {
  name   = var.name
  role   = aws_iam_role.flowguard.id
  policy = data.aws_iam_policy_document.flowguard.json
}
