#!/usr/bin/env bash
# Attaches a dead-letter topic to the Pub/Sub subscription behind an Eventarc trigger (run by Terraform's local-exec).
# Inputs (environment): PROJECT, TRIGGER (projects/P/locations/L/triggers/T), DEAD_LETTER_TOPIC, MAX_ATTEMPTS, PUBSUB_AGENT;
# optional DESCRIBE_TRIES (6) and DESCRIBE_WAIT (10 seconds) for a trigger whose subscription is not there yet.
set -euo pipefail

tries="${DESCRIBE_TRIES:-6}"
subscription=""
for ((i = 1; i <= tries; i++)); do
  subscription="$(gcloud eventarc triggers describe "$TRIGGER" --project="$PROJECT" --format='value(transport.pubsub.subscription)')"
  if [ -n "$subscription" ]; then break; fi
  # A new trigger may take a moment to get its subscription.
  if [ "$i" -lt "$tries" ]; then sleep "${DESCRIBE_WAIT:-10}"; fi
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
