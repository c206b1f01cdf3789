"""Services only the app uses: side-by-side comparison (compare) and background training jobs (jobs)."""
