"""A real Apache Kafka for the workbench: distribution, local nodes, brokers, readiness."""
