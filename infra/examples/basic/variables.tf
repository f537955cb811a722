# Inputs of the example root; see terraform.tfvars.example.

variable "project_id" {
  description = "Project to deploy Clearance into."
  type        = string
}

variable "region" {
  description = "Region for functions, triggers, scheduler jobs and the KMS key."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "clearance"
}

variable "watch_repositories" {
  description = "Repository globs to ingest."
  type        = list(string)
}

variable "base_images" {
  description = "Base image tags to track."
  type        = list(string)
  default     = []
}

variable "environments" {
  description = "Environments: mode (enforce|dryrun) and the GKE clusters (LOCATION.NAME) they cover."
  type = map(object({
    mode     = optional(string, "enforce")
    clusters = optional(list(string), [])
  }))
  default = {
    prod = {}
  }
}

variable "deployer_service_accounts" {
  description = "Service accounts allowed to call the deploy-time check."
  type        = list(string)
  default     = []
}

variable "report_uploader_service_accounts" {
  description = "CI service accounts allowed to upload scanner reports."
  type        = list(string)
  default     = []
}

variable "webhook_registries" {
  description = "Registries that notify ingestWebhook, by kind, with the hosts each may speak for."
  type        = map(object({ hosts = list(string) }))
  default     = {}
}

variable "chat_secrets" {
  description = "Secret Manager secret ids for chat webhook URLs."
  type        = list(string)
  default     = []
}

variable "routing" {
  description = "Routing document (docs/alerts.md); null: alerts are logged, not sent."
  type        = any
  default     = null
}

variable "create_gcr_topic" {
  description = "Create the gcr topic (Artifact Registry publishes only if it exists)."
  type        = bool
  default     = false
}

variable "enable_binauthz_policy" {
  description = "Manage the project's Binary Authorization policy."
  type        = bool
  default     = false
}
