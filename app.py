"""Self-MM live sentiment demo: `python app.py [--model DIR] [--port N]` (also the Hugging Face Space entry)."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from demo.ui import main  # noqa: E402

if __name__ == "__main__":
    main()
