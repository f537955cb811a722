# One service account per function with only the grants it needs, plus the build and scheduler identities.

resource "google_service_account" "function" {
  for_each = local.functions

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "Clearance ${each.value.entry_point}"
  description  = "Runtime identity of the Clearance ${each.value.entry_point} function."

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "function" {
  for_each = local.project_role_grants

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.function[each.value.fn].member
}

resource "google_pubsub_topic_iam_member" "function_publisher" {
  for_each = local.publish_grants

  project = var.project_id
  topic   = google_pubsub_topic.internal[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function[each.value.fn].member
}

resource "google_secret_manager_secret_iam_member" "function_token" {
  for_each = local.secret_env_grants

  project   = var.project_id
  secret_id = google_secret_manager_secret.token[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.fn].member
}

# notifyOwners reads the chat webhook URLs at send time; no other function can.
resource "google_secret_manager_secret_iam_member" "notify_chat" {
  for_each = toset(var.chat_secrets)

  project   = var.project_id
  secret_id = try(google_secret_manager_secret.chat[each.value].secret_id, each.value)
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function["notify-owners"].member
}

# attestImage signs with this one key only.
resource "google_kms_crypto_key_iam_member" "attest_signer" {
  crypto_key_id = google_kms_crypto_key.attestor.id
  role          = "roles/cloudkms.signerVerifier"
  member        = google_service_account.function["attest-image"].member
}

# attestImage attaches ATTESTATION occurrences to the attestor's note only.
resource "google_container_analysis_note_iam_member" "attest_attacher" {
  project = var.project_id
  note    = google_container_analysis_note.attestor.name
  role    = "roles/containeranalysis.notes.attacher"
  member  = google_service_account.function["attest-image"].member
}

# Cloud Build identity for the functions' builds (gen2 no longer defaults to a privileged account).
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "Clearance function builds"

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/cloudbuild.builds.builder"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# Cloud Scheduler's identity for the OIDC-authenticated call to watchBaseImages.
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "Clearance Cloud Scheduler jobs"

  depends_on = [google_project_service.apis]
}

# Eventarc delivers with the function's own identity, which may invoke only its own service.
resource "google_cloud_run_service_iam_member" "pubsub_invoker" {
  for_each = local.pubsub_functions

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.pubsub[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.function[each.key].member
}

locals {
  http_invokers = merge(
    { for sa in var.deployer_service_accounts : "check-image/${sa}" => { fn = "check-image", member = "serviceAccount:${sa}" } },
    { for sa in var.report_uploader_service_accounts : "ingest-report/${sa}" => { fn = "ingest-report", member = "serviceAccount:${sa}" } },
    { for key, grant in { "ingest-webhook/allUsers" = { fn = "ingest-webhook", member = "allUsers" } } : key => grant if var.public_ingest_webhook },
    { for key, grant in { "check-image/allUsers" = { fn = "check-image", member = "allUsers" } } : key => grant if var.public_check },
    { "watch-base-images/scheduler" = { fn = "watch-base-images", member = google_service_account.scheduler.member } },
    { for m in var.dashboard_viewers : "dashboard/${m}" => { fn = "dashboard", member = m } },
  )
}

resource "google_cloud_run_service_iam_member" "http_invoker" {
  for_each = local.http_invokers

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.http[each.value.fn].name
  role     = "roles/run.invoker"
  member   = each.value.member
}
