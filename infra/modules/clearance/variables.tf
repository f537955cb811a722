# Inputs of the Clearance module.

variable "project_id" {
  description = "Project that hosts Clearance (functions, Firestore, topics, KMS key, attestor)."
  type        = string
}

variable "region" {
  description = "Region for the functions, Eventarc triggers, Cloud Scheduler jobs, KMS key ring and source bucket."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (service accounts, functions, topics, secrets)."
  type        = string
  default     = "clearance"

  validation {
    # Service account ids are at most 30 characters: prefix + "-watch-base-images" must fit.
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name_prefix))
    error_message = "name_prefix must be 2-12 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "source_dir" {
  description = "Path to the root of the Clearance repository (package.json, package-lock.json, firestore.rules); zipped and built by Cloud Build."
  type        = string
}

variable "enable_apis" {
  description = "Enable the Google APIs Clearance needs. Set false when a platform team manages project services elsewhere."
  type        = bool
  default     = true
}

variable "watch_repositories" {
  description = "Repository globs whose pushes are ingested, e.g. [\"us-docker.pkg.dev/my-project/prod/**\"] (CLEARANCE_WATCH_REPOSITORIES)."
  type        = list(string)
  default     = []
}

variable "base_images" {
  description = "Base image tags whose digests are tracked, e.g. [\"gcr.io/distroless/nodejs22-debian12:nonroot\"] (CLEARANCE_BASE_IMAGES)."
  type        = list(string)
  default     = []
}

variable "base_registries" {
  description = "Extra registry hosts a base claim may make Clearance read base layers from, besides the image's own and the tracked bases' (CLEARANCE_BASE_REGISTRIES)."
  type        = list(string)
  default     = []
}

variable "environments" {
  description = "Deployment environments. mode is enforce or dryrun; clusters are GKE clusters (\"LOCATION.NAME\") whose Binary Authorization rule requires the Clearance attestor when the policy is enabled."
  type = map(object({
    mode     = optional(string, "enforce")
    clusters = optional(list(string), [])
  }))
  default = {
    prod = {}
  }

  validation {
    condition     = alltrue([for e in values(var.environments) : contains(["enforce", "dryrun"], e.mode)])
    error_message = "Each environment's mode must be \"enforce\" or \"dryrun\"."
  }
}

variable "deployer_service_accounts" {
  description = "Service-account emails of deployers (CI, Cloud Deploy, admission proxies) allowed to call checkImage: Cloud Run invoker plus CLEARANCE_CHECK_ALLOWED_CALLERS."
  type        = list(string)
  default     = []
}

variable "report_uploader_service_accounts" {
  description = "Service-account emails of CI jobs allowed to call ingestReport (Trivy/Grype/OpenVEX uploads)."
  type        = list(string)
  default     = []
}

variable "dashboard_viewers" {
  description = "Who may read the dashboard: IAM members \"user:EMAIL\" or \"serviceAccount:EMAIL\" (Cloud Run invoker plus CLEARANCE_DASHBOARD_ALLOWED_CALLERS). Empty: nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.dashboard_viewers : can(regex("^(user|serviceAccount):[^@\\s]+@[^@\\s]+$", m))])
    error_message = "Each dashboard viewer must be user:EMAIL or serviceAccount:EMAIL (the ID token's email is checked; groups cannot be)."
  }
}

variable "dashboard_extra_audiences" {
  description = "Extra ID-token audiences the dashboard accepts besides its cloudfunctions.net URL: its run.app URL (gcloud run services proxy) or an IAP client id."
  type        = list(string)
  default     = []
}

variable "check_extra_audiences" {
  description = "Extra ID-token audiences accepted by checkImage besides its own URL (CLEARANCE_CHECK_AUDIENCES)."
  type        = list(string)
  default     = []
}

variable "webhook_registries" {
  description = "Registries that notify ingestWebhook, by kind (distribution, harbor, github), each with the hosts it may speak for. Each kind gets its own generated secret in Secret Manager (output token_secrets). Google registries (gcr.io, *.pkg.dev) are refused: their events come from the gcr topic."
  type        = map(object({ hosts = list(string) }))
  default     = {}

  validation {
    condition     = alltrue([for kind, r in var.webhook_registries : contains(["distribution", "harbor", "github"], kind) && length(r.hosts) > 0])
    error_message = "Keys are distribution, harbor or github, each with at least one host."
  }
  validation {
    condition     = alltrue(flatten([for _, r in var.webhook_registries : [for h in r.hosts : !can(regex("(^|\\.)(gcr\\.io|pkg\\.dev)(:.*)?$", h))]]))
    error_message = "Google registry hosts come only from the gcr topic; do not list them for a webhook."
  }
}

variable "report_bearer_token" {
  description = "Also accept a generated bearer token (secret report-token) on ingestReport, for uploaders that cannot mint Google ID tokens. Uploaders with a service account in report_uploader_service_accounts need none."
  type        = bool
  default     = false
}

variable "trusted_root_file" {
  description = "Path, inside the function source, of a Sigstore trusted_root.json for keyless signatures on provenance and VEX (see docs/trust.md); empty = only key-signed evidence verifies."
  type        = string
  default     = ""
}

variable "public_ingest_webhook" {
  description = "Let anyone reach ingestWebhook (Harbor, GitHub and distribution registries cannot mint Google ID tokens); the function then authenticates each registry with its own secret."
  type        = bool
  default     = true
}

variable "public_check" {
  description = "Let anyone reach checkImage, which then relies on its own bearer-token/ID-token check. Needed for a Kubernetes admission webhook outside Google's network."
  type        = bool
  default     = false
}

variable "check_min_instances" {
  description = "Warm instances of checkImage, so deploy-time checks do not pay a cold start."
  type        = number
  default     = 1
}

variable "chat_secrets" {
  description = "Secret Manager secret ids holding Google Chat / Slack webhook URLs, referenced from the routing document as projects/P/secrets/ID/versions/latest. notifyOwners may read only these."
  type        = list(string)
  default     = []
}

variable "create_chat_secrets" {
  description = "Create the chat_secrets (empty: add the webhook URL as a version with gcloud, so it never enters Terraform state). Set false when they already exist."
  type        = bool
  default     = true
}

variable "routing" {
  description = "Routing document (docs/alerts.md: teams with channels, rules of repository globs -> team, fallback) passed as CLEARANCE_ROUTING. Webhook URLs must be Secret Manager references, never literal URLs. null: no routing, alerts are logged (with the image) but not sent."
  type        = any
  default     = null
}

variable "create_gcr_topic" {
  description = "Create the \"gcr\" topic. Artifact Registry publishes push events only if a topic with this name exists; leave false when it already does."
  type        = bool
  default     = false
}

variable "create_occurrences_topic" {
  description = "Create the \"container-analysis-occurrences-v1\" topic. Artifact Analysis normally creates it when the Container Scanning API is enabled."
  type        = bool
  default     = false
}

variable "max_delivery_attempts" {
  description = "Deliveries of a Pub/Sub message to a function before it is dead-lettered (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "configure_dead_letters" {
  description = "Attach the dead-letter topics to the subscriptions Eventarc creates for the Pub/Sub functions. Runs gcloud on the machine that applies (Terraform cannot address those subscriptions)."
  type        = bool
  default     = true
}

variable "create_firestore_database" {
  description = "Create the (default) Firestore database in native mode. Set false when the project already has one."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Firestore location (e.g. nam5, eur3, us-central1). Defaults to the region."
  type        = string
  default     = null
}

variable "firestore_indexes_file" {
  description = "Firestore index definitions (firestore.indexes.json format). Defaults to the repository's firestore.indexes.json."
  type        = string
  default     = null
}

variable "deploy_firestore_rules" {
  description = "Deploy the repository's firestore.rules (deny all client-SDK access)."
  type        = bool
  default     = true
}

variable "kms_protection_level" {
  description = "Protection level of the attestation signing key: SOFTWARE or HSM."
  type        = string
  default     = "SOFTWARE"

  validation {
    condition     = contains(["SOFTWARE", "HSM"], var.kms_protection_level)
    error_message = "kms_protection_level must be SOFTWARE or HSM."
  }
}

variable "enable_binauthz_policy" {
  description = "Manage the project's Binary Authorization policy (a project singleton): cluster rules from environments require the Clearance attestor."
  type        = bool
  default     = false
}

variable "binauthz_default_evaluation_mode" {
  description = "Default rule of the Binary Authorization policy for clusters not listed in environments: ALWAYS_ALLOW, ALWAYS_DENY or REQUIRE_ATTESTATION."
  type        = string
  default     = "ALWAYS_ALLOW"

  validation {
    condition     = contains(["ALWAYS_ALLOW", "ALWAYS_DENY", "REQUIRE_ATTESTATION"], var.binauthz_default_evaluation_mode)
    error_message = "binauthz_default_evaluation_mode must be ALWAYS_ALLOW, ALWAYS_DENY or REQUIRE_ATTESTATION."
  }
}

variable "binauthz_allowlist_patterns" {
  description = "Image name patterns exempt from the Binary Authorization policy (e.g. \"gcr.io/my-project/break-glass/*\")."
  type        = list(string)
  default     = []
}

variable "reevaluate_schedule" {
  description = "Cron schedule of the daily re-evaluation of the whole ledger."
  type        = string
  default     = "0 3 * * *"
}

variable "reevaluate_message" {
  description = "Body of the message Cloud Scheduler publishes on the re-evaluation topic to start a run."
  type        = string
  default     = "{\"kind\":\"start\",\"reason\":\"daily\"}"
}

variable "enrich_schedule" {
  description = "Cron schedule of the enrich sweep: reads the registry for pushes still waiting for it after their own redeliveries ran out."
  type        = string
  default     = "*/5 * * * *"
}

variable "base_watch_schedule" {
  description = "Cron schedule of the base-image watcher."
  type        = string
  default     = "*/30 * * * *"
}

variable "scheduler_time_zone" {
  description = "Time zone of the Cloud Scheduler jobs."
  type        = string
  default     = "Etc/UTC"
}
