# Topics: Google's registry and scan topics (referenced, created only if asked), the internal ones, and a dead-letter topic per function subscription.

resource "google_pubsub_topic" "google" {
  for_each = local.created_google_topics

  project = var.project_id
  name    = each.value
  labels  = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "internal" {
  for_each = local.internal_topics

  project = var.project_id
  name    = each.value
  labels  = local.labels

  # Keep unconsumed messages a week, so a broken consumer can be fixed and replayed by seek.
  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

# One dead-letter topic per Eventarc subscription (one per Pub/Sub function).
resource "google_pubsub_topic" "dead_letter" {
  for_each = local.pubsub_functions

  project = var.project_id
  name    = "${var.name_prefix}-${each.key}-dead-letter"
  labels  = local.labels

  depends_on = [google_project_service.apis]
}

# Messages published to a topic without subscriptions are lost: hold every dead letter for inspection and replay.
resource "google_pubsub_subscription" "dead_letter_hold" {
  for_each = local.pubsub_functions

  project = var.project_id
  name    = "${var.name_prefix}-${each.key}-dead-letter-hold"
  topic   = google_pubsub_topic.dead_letter[each.key].id
  labels  = local.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
}

# The Pub/Sub service agent forwards undeliverable messages: it must publish to the dead-letter topic.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.pubsub_functions

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# Eventarc pushes with an OIDC token minted for the trigger's service account by the Pub/Sub service agent.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  for_each = local.pubsub_functions

  service_account_id = google_service_account.function[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# Eventarc creates the functions' subscriptions itself, so the dead-letter policy and the agent's
# subscriber grant on them are applied with gcloud, re-run whenever a trigger is replaced.
resource "terraform_data" "dead_letter_policy" {
  for_each = { for key, fn in local.pubsub_functions : key => fn if var.configure_dead_letters }

  triggers_replace = [
    google_cloudfunctions2_function.pubsub[each.key].event_trigger[0].trigger,
    google_pubsub_topic.dead_letter[each.key].id,
    var.max_delivery_attempts,
  ]

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = file("${path.module}/scripts/attach-dead-letter.sh")
    environment = {
      PROJECT           = var.project_id
      TRIGGER           = google_cloudfunctions2_function.pubsub[each.key].event_trigger[0].trigger
      DEAD_LETTER_TOPIC = google_pubsub_topic.dead_letter[each.key].id
      MAX_ATTEMPTS      = tostring(var.max_delivery_attempts)
      PUBSUB_AGENT      = google_project_service_identity.pubsub.email
    }
  }

  depends_on = [google_pubsub_topic_iam_member.dead_letter_publisher]
}
