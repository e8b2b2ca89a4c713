"""`python -m seqtasks.serve`: a trained model behind HTTP, on LitServe (seqtasks/serve.py says
what a client sends and gets).

- schema.py: the request body, the server's limits, client errors;
- rules.py: what a request may ask of the loaded task -> the Job the worker runs;
- middleware.py: every body checked in the HTTP server, before anything is queued;
- api.py: the LitAPIs (/predict, batched; /stream, a language model's tokens as they come);
- predictors.py: Jobs -> predict's line and each task's structured fields;
- stream.py: a language model's samples, token by token;
- info.py: /info's model entry; page.py and static/index.html: the page at /;
- server.py: the LitServer that puts them together.
"""
