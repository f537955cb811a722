# The function table and each function's privileges, as literal maps (the offline infra check reads them).

locals {
  # Pub/Sub functions: one Eventarc trigger each on the topic named by `topic` (a key of local.trigger_topics).
  pubsub_functions = {
    "on-registry-push" = {
      entry_point   = "onRegistryPush"
      topic         = "gcr"
      memory        = "512Mi"
      timeout       = 120
      max_instances = 20
    }
    "on-scan-complete" = {
      entry_point   = "onScanComplete"
      topic         = "occurrences"
      memory        = "512Mi"
      timeout       = 300
      max_instances = 20
    }
    "reevaluate" = {
      entry_point   = "reevaluate"
      topic         = "reevaluate"
      memory        = "1Gi"
      timeout       = 540
      max_instances = 10
    }
    "attest-image" = {
      entry_point   = "attestImage"
      topic         = "verdicts"
      memory        = "512Mi"
      timeout       = 120
      max_instances = 10
    }
    "notify-owners" = {
      entry_point = "notifyOwners"
      topic       = "alerts"
      memory      = "256Mi"
      timeout     = 120
      # Chat webhooks are rate limited per space: few instances, retries do the rest.
      max_instances = 5
    }
  }

  # HTTP functions.
  http_functions = {
    "ingest-webhook" = {
      entry_point   = "ingestWebhook"
      memory        = "512Mi"
      timeout       = 60
      min_instances = 0
      max_instances = 20
      cpu           = null
      concurrency   = 1
    }
    "ingest-report" = {
      entry_point   = "ingestReport"
      memory        = "1Gi"
      timeout       = 300
      min_instances = 0
      max_instances = 10
      cpu           = null
      concurrency   = 1
    }
    "check-image" = {
      entry_point   = "checkImage"
      memory        = "512Mi"
      timeout       = 30
      min_instances = var.check_min_instances
      max_instances = 50
      # One vCPU serving ~80 requests at once: the instance's verdict and tag caches are shared by them.
      cpu         = "1"
      concurrency = 80
    }
    "watch-base-images" = {
      entry_point   = "watchBaseImages"
      memory        = "512Mi"
      timeout       = 540
      min_instances = 0
      max_instances = 1
      cpu           = null
      concurrency   = 1
    }
    "dashboard" = {
      entry_point   = "dashboard"
      memory        = "512Mi"
      timeout       = 60
      min_instances = 0
      max_instances = 5
      cpu           = null
      concurrency   = 1
    }
  }

  functions = merge(local.pubsub_functions, local.http_functions)

  # Per function: a delivery not finished 10 s before the function's timeout answers 5xx itself (redelivery),
  # and the routing document only when there is one (an empty one would dead-letter every alert).
  function_env = {
    for name, f in local.functions : name => merge(
      local.common_env,
      { CLEARANCE_HANDLER_DEADLINE_MS = tostring((f.timeout - 10) * 1000) },
      var.routing == null ? {} : { CLEARANCE_ROUTING = jsonencode(var.routing) },
    )
  }

  # Project-level roles. Firestore has no finer grant than the database, Artifact Analysis none finer than the project.
  # reevaluate reads the registry too: the enrich sweep reads pushes whose own redeliveries ran out.
  function_project_roles = {
    "on-registry-push"  = ["roles/datastore.user", "roles/artifactregistry.reader"]
    "on-scan-complete"  = ["roles/datastore.user", "roles/containeranalysis.occurrences.viewer"]
    "reevaluate"        = ["roles/datastore.user", "roles/artifactregistry.reader"]
    "attest-image"      = ["roles/datastore.user", "roles/containeranalysis.occurrences.editor"]
    "notify-owners"     = ["roles/datastore.user"]
    "ingest-webhook"    = ["roles/datastore.user"]
    "ingest-report"     = ["roles/datastore.user"]
    "check-image"       = ["roles/datastore.user"]
    "watch-base-images" = ["roles/datastore.user", "roles/artifactregistry.reader"]
    # Read-only: the dashboard never writes the ledger.
    "dashboard" = ["roles/datastore.viewer"]
  }

  # Internal topics each function may publish to (roles/pubsub.publisher on the topic only).
  function_publishes = {
    "on-registry-push"  = ["verdicts", "alerts", "reevaluate"]
    "on-scan-complete"  = ["verdicts", "alerts"]
    "reevaluate"        = ["reevaluate", "verdicts", "alerts"]
    "attest-image"      = ["alerts"]
    "notify-owners"     = ["alerts"]
    "ingest-webhook"    = ["verdicts", "alerts", "reevaluate"]
    "ingest-report"     = ["verdicts", "alerts", "reevaluate"]
    "check-image"       = ["alerts"]
    "watch-base-images" = ["reevaluate", "alerts"]
    "dashboard"         = []
  }

  # Secrets exposed as environment variables (key of local.token_secrets), one accessor grant each.
  # One secret per channel: each webhook registry its own, report uploaders theirs, the check its own.
  function_secret_env = {
    "ingest-webhook" = { for kind, _ in var.webhook_registries : "CLEARANCE_WEBHOOK_${upper(kind)}_${kind == "github" ? "SECRET" : "TOKEN"}" => "webhook-${kind}" }
    "ingest-report"  = var.report_bearer_token ? { CLEARANCE_REPORT_TOKEN = "report" } : {}
    "check-image"    = { CLEARANCE_CHECK_BEARER_TOKEN = "check" }
  }

  token_secrets = merge(
    { check = "check-token" },
    var.report_bearer_token ? { report = "report-token" } : {},
    { for kind, _ in var.webhook_registries : "webhook-${kind}" => "webhook-${kind}-secret" },
  )

  # Each HTTP function's own callers: ID tokens whose audience is its own URL, from its own service
  # accounts. A token minted for one function is refused by every other (the offline check verifies it).
  http_auth_env = {
    "check-image" = {
      CLEARANCE_CHECK_AUDIENCES       = join(",", concat([local.function_urls_static["check-image"]], var.check_extra_audiences))
      CLEARANCE_CHECK_ALLOWED_CALLERS = join(",", var.deployer_service_accounts)
    }
    "ingest-report" = {
      CLEARANCE_REPORT_AUDIENCES       = local.function_urls_static["ingest-report"]
      CLEARANCE_REPORT_ALLOWED_CALLERS = join(",", var.report_uploader_service_accounts)
      CLEARANCE_TRUSTED_ROOT_FILE      = var.trusted_root_file
    }
    "watch-base-images" = {
      CLEARANCE_WATCH_AUDIENCES       = local.function_urls_static["watch-base-images"]
      CLEARANCE_WATCH_ALLOWED_CALLERS = google_service_account.scheduler.email
    }
    "dashboard" = {
      CLEARANCE_DASHBOARD_AUDIENCES       = join(",", concat([local.function_urls_static["dashboard"]], var.dashboard_extra_audiences))
      CLEARANCE_DASHBOARD_ALLOWED_CALLERS = join(",", [for m in var.dashboard_viewers : split(":", m)[1]])
    }
    # Registries cannot mint Google ID tokens: each authenticates with its own secret, for its own hosts.
    "ingest-webhook" = { for kind, registry in var.webhook_registries : "CLEARANCE_WEBHOOK_${upper(kind)}_HOSTS" => join(",", registry.hosts) }
  }

  internal_topics = {
    alerts     = "${var.name_prefix}-alerts"
    reevaluate = "${var.name_prefix}-reevaluate"
    verdicts   = "${var.name_prefix}-verdicts"
  }

  google_topics = {
    gcr         = "gcr"
    occurrences = "container-analysis-occurrences-v1"
  }

  created_google_topics = {
    for key, name in local.google_topics : key => name
    if(key == "gcr" && var.create_gcr_topic) || (key == "occurrences" && var.create_occurrences_topic)
  }

  # Topic ids by key; try() keeps the dependency on a topic this module created and falls back to Google's.
  trigger_topics = merge(
    { for key, name in local.google_topics : key => try(google_pubsub_topic.google[key].id, "projects/${var.project_id}/topics/${name}") },
    { for key, topic in google_pubsub_topic.internal : key => topic.id },
  )

  publish_grants = {
    for pair in flatten([
      for fn, topics in local.function_publishes : [for topic in topics : { fn = fn, topic = topic }]
    ]) : "${pair.fn}/${pair.topic}" => pair
  }

  project_role_grants = {
    for pair in flatten([
      for fn, roles in local.function_project_roles : [for role in roles : { fn = fn, role = role }]
    ]) : "${pair.fn}/${pair.role}" => pair
  }

  secret_env_grants = {
    for pair in flatten([
      for fn, env in local.function_secret_env : [for secret in distinct(values(env)) : { fn = fn, secret = secret }]
    ]) : "${pair.fn}/${pair.secret}" => pair
  }

  function_names = { for key, _ in local.functions : key => "${var.name_prefix}-${key}" }

  # The cloudfunctions.net URL is known before the function exists, so each HTTP function can name its own audience.
  function_urls_static = { for key, _ in local.http_functions : key => "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.function_names[key]}" }
  check_url_static     = local.function_urls_static["check-image"]
  watch_url_static     = local.function_urls_static["watch-base-images"]
  dashboard_url_static = local.function_urls_static["dashboard"]

  kms_key_version = "${google_kms_crypto_key.attestor.id}/cryptoKeyVersions/1"

  common_env = {
    GOOGLE_CLOUD_PROJECT              = var.project_id
    CLEARANCE_ALERTS_TOPIC            = google_pubsub_topic.internal["alerts"].name
    CLEARANCE_REEVALUATE_TOPIC        = google_pubsub_topic.internal["reevaluate"].name
    CLEARANCE_VERDICTS_TOPIC          = google_pubsub_topic.internal["verdicts"].name
    CLEARANCE_SIGNER                  = "kms"
    CLEARANCE_KMS_KEY_VERSION         = local.kms_key_version
    CLEARANCE_ATTESTOR_NOTE           = google_container_analysis_note.attestor.id
    CLEARANCE_CHECK_URL               = local.check_url_static
    CLEARANCE_BASE_IMAGES             = join(",", var.base_images)
    CLEARANCE_BASE_REGISTRIES         = join(",", var.base_registries)
    CLEARANCE_WATCH_REPOSITORIES      = join(",", var.watch_repositories)
    CLEARANCE_REGISTRY_INSECURE_HOSTS = "none"
    LOG_EXECUTION_ID                  = "true"
  }

  labels = merge({ app = "clearance" }, var.labels)
}
