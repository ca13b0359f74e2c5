"""The names of the worker's queues, apart from the worker so that whoever queues a job and wakes
the worker need not import the worker (which imports every queue's handlers, and those the
services that queue jobs: an import cycle)."""

INBOX_QUEUE = "inbox"
DELIVERY_QUEUE = "delivery"
# General background work (app.services.jobs queues it, app.federation.jobs runs it).
JOBS_QUEUE = "jobs"
