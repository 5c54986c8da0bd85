#!/bin/sh
# LocalStack ready.d hook: creates the queue orderd publishes to and its dead-letter queue,
# with the same redrive policy `orderd queue create` sets (a message moves to the DLQ after
# 5 receives). Runs once LocalStack is ready; safe to run again (create-queue is idempotent
# for identical attributes).
set -eu

QUEUE="${ORDERD_QUEUE_NAME:-orderd-events}"
DLQ="${QUEUE}-dlq"
MAX_RECEIVES="${ORDERD_QUEUE_MAX_RECEIVES:-5}"

awslocal sqs create-queue --queue-name "$DLQ" >/dev/null
DLQ_URL=$(awslocal sqs get-queue-url --queue-name "$DLQ" --query QueueUrl --output text)
DLQ_ARN=$(awslocal sqs get-queue-attributes --queue-url "$DLQ_URL" \
    --attribute-names QueueArn --query Attributes.QueueArn --output text)

ATTRS=$(mktemp)
cat > "$ATTRS" <<JSON
{
  "VisibilityTimeout": "30",
  "RedrivePolicy": "{\"deadLetterTargetArn\":\"$DLQ_ARN\",\"maxReceiveCount\":\"$MAX_RECEIVES\"}"
}
JSON
awslocal sqs create-queue --queue-name "$QUEUE" --attributes "file://$ATTRS" >/dev/null
rm -f "$ATTRS"

echo "orderd queues ready: $QUEUE (dead letters to $DLQ after $MAX_RECEIVES receives)"
