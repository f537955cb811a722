# Binary Authorization: the attestor note, the attestor holding the KMS public key, and the optional policy requiring it.

resource "google_container_analysis_note" "attestor" {
  project = var.project_id
  name    = "${var.name_prefix}-attestor-note"

  attestation_authority {
    hint {
      human_readable_name = "Clearance: image passed its policy"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_binary_authorization_attestor" "clearance" {
  project     = var.project_id
  name        = "${var.name_prefix}-attestor"
  description = "Images Clearance evaluated and allowed (signed with ${google_kms_crypto_key.attestor.name})."

  attestation_authority_note {
    note_reference = google_container_analysis_note.attestor.name

    public_keys {
      # //cloudkms.googleapis.com/v1/projects/.../cryptoKeyVersions/1: the publicKeyId attestations carry.
      id = data.google_kms_crypto_key_version.attestor.id

      pkix_public_key {
        public_key_pem      = data.google_kms_crypto_key_version.attestor.public_key[0].pem
        signature_algorithm = data.google_kms_crypto_key_version.attestor.public_key[0].algorithm
      }
    }
  }
}

# Binary Authorization reads attestations on the note when it verifies a deployment.
resource "google_container_analysis_note_iam_member" "binauthz_viewer" {
  project = var.project_id
  note    = google_container_analysis_note.attestor.name
  role    = "roles/containeranalysis.notes.occurrences.viewer"
  member  = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-binaryauthorization.iam.gserviceaccount.com"

  depends_on = [google_project_service.apis]
}

locals {
  enforcement_modes = {
    enforce = "ENFORCED_BLOCK_AND_AUDIT_LOG"
    dryrun  = "DRYRUN_AUDIT_LOG_ONLY"
  }

  binauthz_cluster_rules = {
    for pair in flatten([
      for env, e in var.environments : [for cluster in e.clusters : { cluster = cluster, mode = e.mode }]
    ]) : pair.cluster => local.enforcement_modes[pair.mode]
  }
}

resource "google_binary_authorization_policy" "clearance" {
  count = var.enable_binauthz_policy ? 1 : 0

  project = var.project_id

  # Google-maintained system images (GKE add-ons) are always allowed.
  global_policy_evaluation_mode = "ENABLE"

  dynamic "admission_whitelist_patterns" {
    for_each = var.binauthz_allowlist_patterns
    content {
      name_pattern = admission_whitelist_patterns.value
    }
  }

  default_admission_rule {
    evaluation_mode         = var.binauthz_default_evaluation_mode
    enforcement_mode        = "ENFORCED_BLOCK_AND_AUDIT_LOG"
    require_attestations_by = var.binauthz_default_evaluation_mode == "REQUIRE_ATTESTATION" ? [google_binary_authorization_attestor.clearance.id] : []
  }

  dynamic "cluster_admission_rules" {
    for_each = local.binauthz_cluster_rules
    content {
      cluster                 = cluster_admission_rules.key
      evaluation_mode         = "REQUIRE_ATTESTATION"
      enforcement_mode        = cluster_admission_rules.value
      require_attestations_by = [google_binary_authorization_attestor.clearance.id]
    }
  }
}
