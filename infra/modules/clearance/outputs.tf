# Outputs: endpoints, attestor, topics, identities.

output "check_url" {
  description = "checkImage endpoint (REST /v1/check, /admission, /gatekeeper)."
  value       = google_cloudfunctions2_function.http["check-image"].url
}

output "dashboard_url" {
  description = "dashboard: the fleet's state for people (readers listed in dashboard_viewers)."
  value       = google_cloudfunctions2_function.http["dashboard"].url
}

output "ingest_webhook_url" {
  description = "ingestWebhook endpoint for distribution, Harbor and GitHub webhooks."
  value       = google_cloudfunctions2_function.http["ingest-webhook"].url
}

output "ingest_report_url" {
  description = "ingestReport endpoint for Trivy, Grype and OpenVEX uploads."
  value       = google_cloudfunctions2_function.http["ingest-report"].url
}

output "attestor_name" {
  description = "Binary Authorization attestor (projects/P/attestors/A), for policies and `gcloud container binauthz`."
  value       = google_binary_authorization_attestor.clearance.id
}

output "attestor_note" {
  description = "Container Analysis note the attestations are attached to (CLEARANCE_ATTESTOR_NOTE)."
  value       = google_container_analysis_note.attestor.id
}

output "kms_key_version" {
  description = "KMS key version that signs attestations (CLEARANCE_KMS_KEY_VERSION)."
  value       = local.kms_key_version
}

output "topics" {
  description = "Pub/Sub topic names: the functions' sources and the dead-letter topics."
  value = {
    gcr          = local.google_topics["gcr"]
    occurrences  = local.google_topics["occurrences"]
    alerts       = google_pubsub_topic.internal["alerts"].name
    reevaluate   = google_pubsub_topic.internal["reevaluate"].name
    verdicts     = google_pubsub_topic.internal["verdicts"].name
    dead_letters = { for key, topic in google_pubsub_topic.dead_letter : key => topic.name }
  }
}

output "function_names" {
  description = "Cloud Functions (and Cloud Run service) names by function folder."
  value       = local.function_names
}

output "service_accounts" {
  description = "Runtime service-account emails by function folder."
  value       = { for key, sa in google_service_account.function : key => sa.email }
}

output "token_secrets" {
  description = "Secret Manager secrets holding the ingest and check bearer tokens (read them with gcloud; never printed here)."
  value       = { for key, secret in google_secret_manager_secret.token : key => secret.id }
}
