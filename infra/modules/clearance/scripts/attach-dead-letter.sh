#!/usr/bin/env bash
# Attaches a dead-letter topic to the Pub/Sub subscription behind an Eventarc trigger (run by Terraform's local-exec).
# Inputs (environment): PROJECT, TRIGGER (projects/P/locations/L/triggers/T), DEAD_LETTER_TOPIC, MAX_ATTEMPTS, PUBSUB_AGENT.
set -euo pipefail

subscription=""
for _ in 1 2 3 4 5 6; do
  subscription="$(gcloud eventarc triggers describe "$TRIGGER" --project="$PROJECT" --format='value(transport.pubsub.subscription)')"
  [ -n "$subscription" ] && break
  # A new trigger may take a moment to get its subscription.
  sleep 10
done
if [ -z "$subscription" ]; then
  echo "no Pub/Sub subscription found for Eventarc trigger $TRIGGER" >&2
  exit 1
fi

gcloud pubsub subscriptions update "$subscription" --project="$PROJECT" \
  --dead-letter-topic="$DEAD_LETTER_TOPIC" \
  --max-delivery-attempts="$MAX_ATTEMPTS" \
  --min-retry-delay=10s --max-retry-delay=600s

gcloud pubsub subscriptions add-iam-policy-binding "$subscription" --project="$PROJECT" \
  --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber >/dev/null

echo "dead-letter topic $DEAD_LETTER_TOPIC attached to $subscription (max $MAX_ATTEMPTS deliveries)"
