# Start-up file of `make shell` when the shell is bash (bash --rcfile).
# The user's ~/.bashrc runs first, as in any interactive shell; it may put
# another python first on PATH (`eval "$(pyenv init -)"`, conda's hook), so
# the project environment is put back in front afterwards, and the prompt
# names it. VIRTUAL_ENV and MAKE_SHELL_STACK come from the Makefile.
if [[ -f ~/.bashrc ]]; then
  source ~/.bashrc
fi
export PATH="$VIRTUAL_ENV/bin:$PATH"
hash -r
PS1="($MAKE_SHELL_STACK) ${PS1:-\w \$ }"
