# Terraform and provider pins for the example root (match the module's).
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
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

  # Keep state remote and private: it holds the generated ingest/check tokens.
  # backend "gcs" {
  #   bucket = "my-terraform-state"
  #   prefix = "clearance"
  # }
}
