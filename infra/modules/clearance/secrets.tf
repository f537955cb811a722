# Shared tokens for ingestWebhook/ingestReport and checkImage, and the chat webhook secrets notifyOwners reads.

resource "random_password" "token" {
  for_each = local.token_secrets

  length  = 48
  special = false
}

resource "google_secret_manager_secret" "token" {
  for_each = local.token_secrets

  project   = var.project_id
  secret_id = "${var.name_prefix}-${each.value}"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# Rotate by tainting random_password.token["<key>"] and applying: functions read version "latest" on their next start.
resource "google_secret_manager_secret_version" "token" {
  for_each = local.token_secrets

  secret      = google_secret_manager_secret.token[each.key].id
  secret_data = random_password.token[each.key].result
}

# Created empty: the webhook URL is added as a version with gcloud and never enters Terraform state.
resource "google_secret_manager_secret" "chat" {
  for_each = toset([for id in var.chat_secrets : id if var.create_chat_secrets])

  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}
