"""Training the bundled reference models: data (corpus, lexicon), tokenizer, the build, and the
fine-tune robustness measurement recorded in their manifest."""
