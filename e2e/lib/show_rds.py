"""Print the RDS instances as the AWS API (here: the emulator) reports them, with their tags."""
import os

import boto3

rds = boto3.client("rds", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ.get("DEMO_REGION", "ap-northeast-2"))
for db in rds.describe_db_instances()["DBInstances"]:
    tags = {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"])["TagList"]}
    print(f'{db["DBInstanceIdentifier"]}: {db["Engine"]} {db["EngineVersion"]}, {db["DBInstanceClass"]}, '
          f'{db["AllocatedStorage"]} GiB, status {db["DBInstanceStatus"]}')
    ep = db.get("Endpoint", {})
    print(f'  endpoint {ep.get("Address")}:{ep.get("Port")}, master user {db["MasterUsername"]}')
    print("  tags: " + ", ".join(f"{k}={v}" for k, v in sorted(tags.items())))
