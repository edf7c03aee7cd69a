"""Alarms and a dashboard for the data path: every place a change can get stuck before the lake.

The stream's retention bounds how long delivery may be broken before changes are lost, so the
stream-age alarms fire within an hour, long before the shortest allowed retention (24 h).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from producer.capture.delivery import PROCESSOR_BUFFER_INTERVAL
from shared.naming import TableNames

ITERATOR_AGE_THRESHOLD = Duration.hours(1)
UNREPLICATED_AGE_THRESHOLD = Duration.minutes(10)
PERIOD = Duration.minutes(5)


def freshness_threshold_seconds(interval: int) -> int:
    """2 x the S3 buffer interval, but never below what a healthy pipeline needs (processor buffer +
    S3 buffer + a minute for the transform and the write)."""
    return max(2 * interval, interval + int(PROCESSOR_BUFFER_INTERVAL.to_seconds()) + 60)


@dataclass(frozen=True)
class _Watch:
    name: str
    metric: cloudwatch.IMetric
    threshold: float
    comparison: cloudwatch.ComparisonOperator
    missing: cloudwatch.TreatMissingData
    periods: int
    description: str


class TableAlarms(Construct):
    """One table's alarms (to the stack's shared alarm topic) and its dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: TableNames,
        retention_hours: int,
        buffer_interval_seconds: int,
        topic: sns.ITopic,
        stream: kinesis.IStream,
        delivery_stream: firehose.IDeliveryStream,
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        gt = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
        lt = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
        # Quiet periods emit no data for most of these metrics: that is health, not failure.
        quiet = cloudwatch.TreatMissingData.NOT_BREACHING

        def ddb(metric_name: str, statistic: str) -> cloudwatch.IMetric:
            # A Metrics Insights query filtered on the table alone: the replication metrics also carry a
            # DelegatedOperation dimension whose value AWS does not document, and an alarm on a guessed value
            # would watch a series that never exists (and stay OK forever).
            return cloudwatch.MathExpression(
                expression=(
                    f'SELECT {statistic}("{metric_name}") FROM SCHEMA("AWS/DynamoDB", DelegatedOperation, TableName) '
                    f"WHERE TableName = '{names.table}'"
                ),
                period=PERIOD,
                label=metric_name,
            )

        def fh(metric_name: str, statistic: str) -> cloudwatch.Metric:
            return delivery_stream.metric(metric_name, statistic=statistic, period=PERIOD)

        watches = [
            _Watch(
                "StreamIteratorAge",
                stream.metric_get_records_iterator_age_milliseconds(statistic="Maximum", period=PERIOD),
                ITERATOR_AGE_THRESHOLD.to_milliseconds(),
                gt,
                # Firehose polls the stream continuously; no GetRecords at all means nobody is reading.
                cloudwatch.TreatMissingData.BREACHING,
                3,
                f"Oldest unread change is over {ITERATOR_AGE_THRESHOLD.to_hours()} h old; changes are lost "
                f"after {retention_hours} h (stream retention). Check Firehose and the transform.",
            ),
            _Watch(
                "StreamWriteThrottled",
                stream.metric_write_provisioned_throughput_exceeded(statistic="Sum", period=PERIOD),
                0,
                gt,
                quiet,
                3,
                "DynamoDB's writes to the change stream are throttled for 15 min: add shards.",
            ),
            _Watch(
                "ReplicationThrottled",
                ddb("ThrottledPutRecordCount", "SUM"),
                0,
                gt,
                quiet,
                3,
                "Kinesis is throttling DynamoDB's change replication for 15 min: add shards.",
            ),
            _Watch(
                "ReplicationLag",
                ddb("AgeOfOldestUnreplicatedRecord", "MAX"),
                UNREPLICATED_AGE_THRESHOLD.to_milliseconds(),
                gt,
                quiet,
                3,
                "Changes are waiting over 10 min to leave DynamoDB: check stream capacity and its key policy.",
            ),
            _Watch(
                "ReplicationFailed",
                ddb("FailedToReplicateRecordCount", "SUM"),
                0,
                gt,
                quiet,
                1,
                "DynamoDB skipped change records it could not put on the stream (over 1 MB): they are lost.",
            ),
            _Watch(
                "DeliveryFreshness",
                fh("DeliveryToS3.DataFreshness", "Maximum"),
                freshness_threshold_seconds(buffer_interval_seconds),
                gt,
                quiet,
                3,
                "Records wait in Firehose longer than the buffers explain: S3 or KMS writes are failing.",
            ),
            _Watch(
                "DeliveryFailing",
                fh("DeliveryToS3.Success", "Minimum"),
                1,
                lt,
                quiet,
                3,
                "Firehose puts to the data-lake bucket fail: check the bucket and key policies in the consumer.",
            ),
            _Watch(
                "RawBackupFailing",
                fh("BackupToS3.Success", "Minimum"),
                1,
                lt,
                quiet,
                3,
                "Firehose cannot write the raw backup that makes replays possible.",
            ),
            _Watch(
                "TransformFailing",
                fh("ExecuteProcessing.Success", "Minimum"),
                1,
                lt,
                quiet,
                3,
                "Firehose's calls of the transform Lambda fail; records go to the errors/ prefix after retries.",
            ),
            _Watch(
                "TransformRecordsFailed",
                cloudwatch.Metric(
                    namespace=names.metrics_namespace, metric_name="RecordsFailed", statistic="Sum", period=PERIOD
                ),
                0,
                gt,
                quiet,
                1,
                "The transform answered records ProcessingFailed; they are kept unchanged under errors/ "
                "(see the function's log line for the reasons) and need a replay once fixed.",
            ),
            _Watch(
                "TransformErrors",
                function.metric_errors(statistic="Sum", period=PERIOD),
                0,
                gt,
                quiet,
                1,
                "The transform Lambda raised or timed out; Firehose retries the whole batch.",
            ),
            _Watch(
                "TransformThrottles",
                function.metric_throttles(statistic="Sum", period=PERIOD),
                0,
                gt,
                quiet,
                3,
                "The transform Lambda is throttled for 15 min: reserved concurrency is below Firehose's demand.",
            ),
        ]
        action = actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for w in watches:
            alarm = cloudwatch.Alarm(
                self,
                w.name,
                alarm_name=f"{names.alarm_prefix}{w.name}",
                alarm_description=w.description,
                metric=w.metric,
                threshold=w.threshold,
                comparison_operator=w.comparison,
                evaluation_periods=w.periods,
                datapoints_to_alarm=w.periods,
                treat_missing_data=w.missing,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[w.name] = alarm

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=names.dashboard)
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24)
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=w.name,
                    left=[w.metric],
                    width=8,
                    left_annotations=[cloudwatch.HorizontalAnnotation(value=w.threshold, label="alarm threshold")],
                )
                for w in watches
            )
        )
