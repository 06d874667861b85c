"""`residency demo`: the whole product on an embedded example, with no cloud account.

`runner` orchestrates (local peers → seed → real collectors → engine → history → reports),
`estate` holds the example estate's schema and seeds it, and `fake_gcs`/`fake_arm` are the
loopback Cloud Storage and Azure Resource Manager peers (also used by the collector tests).
Like the CLI this package is an orchestrator, but it never imports click and never prints.
"""
