"""What runs on Kaggle and how it is made: the notebook templates and their rendering (render), kernel folders
on disk (folders), the output contract every kernel's writer and every reader share (contract), and the code
kernels run (runtime/), pasted into the notebooks at render."""
