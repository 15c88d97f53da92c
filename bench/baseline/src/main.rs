//! The cold-start benchmark's baseline (`scripts/bench cold`): the smallest honest Lambda of this
//! shape, a `lambda_http` handler with an `aws-config` DynamoDB client built at cold start, that
//! reads one item per request. Every Patchbay function is measured as a ratio to it.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{run, service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    run(service_fn(move |_req: Request| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            let item = client
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S("BASELINE".into()))
                .key("sk", AttributeValue::S("BASELINE".into()))
                .send()
                .await?;
            Ok::<_, Error>(Response::builder().status(200).body(Body::from(format!("{}", item.item.is_some())))?)
        }
    }))
    .await
}
