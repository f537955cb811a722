# Provider and Terraform pins for the Clearance module.
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
    # Only for google_project_service_identity (the Pub/Sub service agent used for dead-lettering).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.14"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}
