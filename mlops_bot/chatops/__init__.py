"""ChatOps: `/mlops-bot ...` commands written in a pull/merge request's comments. `command` reads one from a
comment's text, `comment` the comment from a GitHub issue_comment or GitLab note payload (or `serve`'s event),
`authorize` checks who may do it where (through the forge's API, never from the comment), `answer` writes the
replies. The acting is the flows' (flows/chatops_act.py): this package moves nothing."""
