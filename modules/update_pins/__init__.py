"""The jobs of modules/update-pins, one module each (stdlib only), in the order it runs them:

- upstream: where tags, tarballs and official checksums come from (git ls-remote and
  downloads, or --from-json and --hashes)
- hashes: upstream's official list of release checksums (valkey-hashes)
- module_env: the components in modules/, each module.env read and rewritten in place
- check: one component and its dependencies against upstream: what to pin, or why not
- rewrite: the other files a new pin is written to, and the writing (or a dry run's diff)
- summary: the summary of the run (Markdown)
- common: what they share (Failure; the URL of a GitHub release archive)

The policy is in modules/update-pins' docstring.
"""
