# Every Clearance function as a Cloud Functions gen2 function on nodejs22: Pub/Sub ones with Eventarc triggers, the rest over HTTP.

resource "google_cloudfunctions2_function" "pubsub" {
  for_each = local.pubsub_functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = "Clearance ${each.value.entry_point}: Pub/Sub topic ${local.trigger_topics[each.value.topic]}"
  labels      = local.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.function[each.key].email
    available_memory               = each.value.memory
    timeout_seconds                = each.value.timeout
    min_instance_count             = 0
    max_instance_count             = each.value.max_instances
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    environment_variables          = local.function_env[each.key]

    dynamic "secret_environment_variables" {
      for_each = lookup(local.function_secret_env, each.key, {})
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.token[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = local.trigger_topics[each.value.topic]
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.function[each.key].email
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.build,
    google_project_iam_member.function,
    google_pubsub_topic_iam_member.function_publisher,
    google_secret_manager_secret_iam_member.function_token,
    google_secret_manager_secret_version.token,
  ]
}

resource "google_cloudfunctions2_function" "http" {
  for_each = local.http_functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = "Clearance ${each.value.entry_point}: HTTP"
  labels      = local.labels

  build_config {
    runtime         = "nodejs22"
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function[each.key].email
    available_memory                 = each.value.memory
    timeout_seconds                  = each.value.timeout
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = merge(local.function_env[each.key], local.http_auth_env[each.key])

    dynamic "secret_environment_variables" {
      for_each = lookup(local.function_secret_env, each.key, {})
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.token[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.build,
    google_project_iam_member.function,
    google_pubsub_topic_iam_member.function_publisher,
    google_secret_manager_secret_iam_member.function_token,
    google_secret_manager_secret_version.token,
  ]
}
