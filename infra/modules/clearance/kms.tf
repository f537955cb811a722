# The attestation signing key: ECDSA P-256 / SHA-256 in Cloud KMS, the algorithm Binary Authorization verifies.

resource "google_kms_key_ring" "clearance" {
  project  = var.project_id
  name     = "${var.name_prefix}-keyring"
  location = var.region

  # Key rings and keys cannot be deleted in KMS; destroying them in Terraform only orphans the signing key.
  lifecycle {
    prevent_destroy = true
  }

  depends_on = [google_project_service.apis]
}

resource "google_kms_crypto_key" "attestor" {
  name     = "${var.name_prefix}-attestor"
  key_ring = google_kms_key_ring.clearance.id
  purpose  = "ASYMMETRIC_SIGN"
  labels   = local.labels

  version_template {
    algorithm        = "EC_SIGN_P256_SHA256"
    protection_level = var.kms_protection_level
  }

  # Destroying the key destroys its versions: every attestation it signed would stop verifying.
  lifecycle {
    prevent_destroy = true
  }
}

# Version 1 is the one functions sign with (CLEARANCE_KMS_KEY_VERSION) and the attestor trusts.
data "google_kms_crypto_key_version" "attestor" {
  crypto_key = google_kms_crypto_key.attestor.id
  version    = 1
}
