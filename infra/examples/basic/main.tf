# Example root: Clearance in one project, built from this repository's source.

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

module "clearance" {
  source = "../../modules/clearance"

  project_id  = var.project_id
  region      = var.region
  name_prefix = var.name_prefix
  source_dir  = abspath("${path.root}/../../..")

  watch_repositories               = var.watch_repositories
  base_images                      = var.base_images
  environments                     = var.environments
  deployer_service_accounts        = var.deployer_service_accounts
  report_uploader_service_accounts = var.report_uploader_service_accounts
  webhook_registries               = var.webhook_registries
  chat_secrets                     = var.chat_secrets
  routing                          = var.routing

  create_gcr_topic       = var.create_gcr_topic
  enable_binauthz_policy = var.enable_binauthz_policy
}
