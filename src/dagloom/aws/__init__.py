"""Amazon S3 (and S3-compatible servers such as MinIO) for dagloom: `dagloom.aws.s3`.
Needs the `s3` extra (`pip install 'dagloom[s3]'`)."""
