"""The user service: accounts, authentication and what each user keeps."""
