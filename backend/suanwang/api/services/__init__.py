"""What the routes call: taking in signed orders, and quoting the order to sign. A route parses, calls one
of these and shapes the answer; these raise the service's errors (`suanwang.errors`) naming the field."""
