# Cloud Scheduler: the daily re-evaluation start message, the enrich sweep and the base-image watcher call (OIDC-authenticated).

resource "google_cloud_scheduler_job" "reevaluate" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-daily-reevaluate"
  description = "Starts the paged re-evaluation of the whole image ledger."
  schedule    = var.reevaluate_schedule
  time_zone   = var.scheduler_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.internal["reevaluate"].id
    data       = base64encode(var.reevaluate_message)
  }

  depends_on = [google_project_service.apis]
}

# A push is recorded before the registry is read; this reads what is still waiting once the push's own redeliveries ran out.
resource "google_cloud_scheduler_job" "enrich" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-enrich-sweep"
  description = "Reads the registry for pushed images still waiting for their manifest and config."
  schedule    = var.enrich_schedule
  time_zone   = var.scheduler_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.internal["reevaluate"].id
    data       = base64encode("{\"kind\":\"enrich\"}")
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_scheduler_job" "watch_base_images" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-watch-base-images"
  description      = "Checks the tracked base images for new digests and flags their dependents."
  schedule         = var.base_watch_schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "540s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
  }

  http_target {
    uri         = google_cloudfunctions2_function.http["watch-base-images"].url
    http_method = "POST"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.watch_url_static
    }
  }

  depends_on = [google_cloud_run_service_iam_member.http_invoker]
}

resource "google_cloud_scheduler_job" "flush_alerts" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-flush-alerts"
  description = "Folds digest-mode alerts and sends alerts left pending after their redeliveries ran out."
  schedule    = "* * * * *"
  time_zone   = var.scheduler_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.internal["alerts"].id
    data       = base64encode("{}")
    attributes = { action = "flush" }
  }

  depends_on = [google_project_service.apis]
}
