"""What the consumer's bucket policy grants and the producer's delivery role asks for: one list, so the two
sides cannot drift apart."""

from __future__ import annotations

# Exactly what Firehose's S3 destination uses. PutObjectAcl because Firehose sends
# x-amz-acl: bucket-owner-full-control (accepted, and ignored, under BucketOwnerEnforced).
DELIVERY_BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")
DELIVERY_OBJECT_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl")
DELIVERY_S3_ACTIONS = tuple(sorted(DELIVERY_BUCKET_ACTIONS + DELIVERY_OBJECT_ACTIONS))
# What Firehose's S3 writes need from the data-lake key: a data key for PutObject/UploadPart, Decrypt to
# finish multipart uploads and to read back (Firehose's GetObject on retries).
DELIVERY_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
