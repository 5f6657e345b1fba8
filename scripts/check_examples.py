"""Static check of every module's EXAMPLES against its own documentation.

For each module of the collection (``ansible-doc --json``, so doc fragments are merged in):

- EXAMPLES parses as YAML and is a list of tasks (blocks and whole plays are walked too);
- every task calls exactly one module, which exists (our own modules by name, any other one
  through Ansible's plugin loader), with only valid task keywords around it;
- for this collection's modules, every argument is a documented option (or alias), values match
  the documented ``choices`` and, loosely, the ``type``; options marked ``required`` are given;
  ``suboptions`` of dicts and of lists of dicts are checked the same way, at every depth.

Values that are Jinja templates are not judged. That is how "the examples run" is checked
statically; the integration tests run the modules for real.

Usage: check_examples.py [--collection hypervisor.network] [MODULE ...]
Exit status 0 when every example is valid, 1 otherwise. Needs ANSIBLE_COLLECTIONS_PATH to find
the collection (the Makefile and scripts/docs-check.sh set it).
"""

import argparse
import json
import os
import subprocess
import sys

import yaml

from ansible.module_utils.parsing.convert_bool import BOOLEANS
from ansible.playbook.block import Block
from ansible.playbook.play import Play
from ansible.playbook.task import Task

TASK_KEYWORDS = set(Task.fattributes)
BLOCK_KEYWORDS = set(Block.fattributes)
PLAY_TASK_LISTS = ('pre_tasks', 'tasks', 'post_tasks', 'handlers')
PLAY_KEYWORDS = set(Play.fattributes)


def is_template(value):
    return isinstance(value, str) and ('{{' in value or '{%' in value)


class Checker:
    def __init__(self, collection, docs):
        self.collection = collection
        self.docs = docs  # fqcn -> ansible-doc JSON entry
        self.errors = []
        self._loader_ready = False

    def error(self, where, msg):
        self.errors.append(f'{where}: {msg}')

    # ---- module resolution -------------------------------------------------------------------
    def module_exists(self, name):
        if name in self.docs:
            return True
        if name.startswith(self.collection + '.'):
            return False
        if not self._loader_ready:
            from ansible.plugins.loader import init_plugin_loader
            init_plugin_loader()
            self._loader_ready = True
        from ansible.plugins.loader import action_loader, module_loader
        for loader in (module_loader, action_loader):
            ctx = loader.find_plugin_with_context(name)
            if ctx.resolved:
                return True
        return False

    # ---- walking the examples ----------------------------------------------------------------
    def check_examples(self, fqcn, text):
        where = f'{fqcn} EXAMPLES'
        if not text or not text.strip():
            self.error(where, 'missing or empty')
            return
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            self.error(where, f'not valid YAML: {exc}'.replace('\n', ' '))
            return
        if not isinstance(data, list) or not data:
            self.error(where, 'must be a non-empty YAML list of tasks')
            return
        used_self = False
        for index, item in enumerate(data, 1):
            used_self |= self.check_item(f'{where} item {index}', item)
        if not used_self:
            self.error(where, f'no example calls {fqcn}')

    def check_item(self, where, item):
        """Check a task, block or play; return True if it (or a child) calls the module itself."""
        if not isinstance(item, dict):
            self.error(where, f'must be a mapping, got {type(item).__name__}')
            return False
        if 'hosts' in item or 'import_playbook' in item:
            return self.check_play(where, item)
        if 'block' in item:
            return self.check_block(where, item)
        return self.check_task(where, item)

    def check_play(self, where, play):
        found = False
        for key in play:
            if key not in PLAY_KEYWORDS and key not in PLAY_TASK_LISTS and key not in ('roles',):
                self.error(where, f'unknown play keyword {key!r}')
        for section in PLAY_TASK_LISTS:
            for index, item in enumerate(play.get(section) or [], 1):
                found |= self.check_item(f'{where} {section}[{index}]', item)
        return found

    def check_block(self, where, block):
        found = False
        for key in block:
            if key not in BLOCK_KEYWORDS:
                self.error(where, f'unknown block keyword {key!r}')
        for section in ('block', 'rescue', 'always'):
            for index, item in enumerate(block.get(section) or [], 1):
                found |= self.check_item(f'{where} {section}[{index}]', item)
        return found

    def check_task(self, where, task):
        name = task.get('name')
        if name:
            where = f'{where} ({name!r})'
        candidates = [k for k in task if k not in TASK_KEYWORDS and not k.startswith('with_')]
        if 'action' in task or 'local_action' in task:
            self.error(where, 'use the "module_fqcn: {options}" form, not action/local_action')
            return False
        if len(candidates) != 1:
            if not candidates:
                self.error(where, 'names no module')
            else:
                self.error(where, f'more than one module or unknown task keyword: {sorted(candidates)}')
            return False
        module = candidates[0]
        args = task[module]
        if not self.module_exists(module):
            self.error(where, f'module {module!r} does not exist')
            return False
        if module not in self.docs:
            return False
        if '.' not in module:
            self.error(where, f'use the FQCN {self.collection}.{module}')
        if 'args' in task and isinstance(task['args'], dict):
            args = dict(task['args'], **(args or {}))
        if args is None:
            args = {}
        if is_template(args):
            return True
        if not isinstance(args, dict):
            self.error(where, f'{module}: options must be a mapping, got {type(args).__name__} {args!r}')
            return True
        self.check_options(f'{where} {module}', args, self.docs[module]['doc'].get('options') or {})
        return True

    # ---- options -----------------------------------------------------------------------------
    def check_options(self, where, args, spec):
        names = {}
        for opt, odoc in spec.items():
            names[opt] = opt
            for alias in odoc.get('aliases') or []:
                names[alias] = opt
        given = set()
        for key, value in args.items():
            opt = names.get(key)
            if opt is None:
                self.error(where, f'option {key!r} is not documented (documented: {", ".join(sorted(spec))})')
                continue
            if opt in given:
                self.error(where, f'option {opt!r} given twice (through an alias)')
            given.add(opt)
            self.check_value(f'{where}.{key}', value, spec[opt])
        for opt, odoc in spec.items():
            if odoc.get('required') and opt not in given:
                self.error(where, f'required option {opt!r} is missing')

    def check_value(self, where, value, odoc):
        if value is None or is_template(value):
            return
        otype = odoc.get('type', 'str')
        choices = odoc.get('choices')
        suboptions = odoc.get('suboptions')
        if isinstance(choices, dict):
            choices = list(choices)
        if otype == 'list':
            if isinstance(value, str):
                value = [v.strip() for v in value.split(',')]
            if not isinstance(value, list):
                self.error(where, f'must be a list, got {type(value).__name__}')
                return
            elements = odoc.get('elements', 'str')
            for index, item in enumerate(value):
                self.check_scalar(f'{where}[{index}]', item, elements, choices, suboptions)
            return
        self.check_scalar(where, value, otype, choices, suboptions)

    def check_scalar(self, where, value, otype, choices, suboptions):
        if value is None or is_template(value):
            return
        if otype == 'dict':
            if not isinstance(value, dict):
                self.error(where, f'must be a dict, got {type(value).__name__}')
            elif suboptions:
                self.check_options(where, value, suboptions)
            return
        if otype == 'bool':
            if not (isinstance(value, bool) or (isinstance(value, (str, int)) and value in BOOLEANS)):
                self.error(where, f'must be a boolean, got {value!r}')
                return
        elif otype == 'int':
            if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip('-').isdigit())):
                self.error(where, f'must be an integer, got {value!r}')
                return
        elif otype == 'float':
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                self.error(where, f'must be a number, got {value!r}')
                return
        elif otype in ('str', 'path', 'raw', 'jsonarg', 'json', 'bytes', 'bits'):
            if otype in ('str', 'path') and isinstance(value, (dict, list)):
                self.error(where, f'must be a string, got {type(value).__name__}')
                return
        if choices is not None and not is_template(value):
            normalised = value
            if otype == 'str' and isinstance(value, (int, float)) and not isinstance(value, bool):
                normalised = str(value)
            if normalised not in choices:
                self.error(where, f'{value!r} is not one of the choices {choices}')


def load_docs(collection, modules):
    """ansible-doc --json for all modules in one call; one call per module if that fails, so that
    one module whose documentation does not parse does not hide the others' examples."""
    def call(names):
        cmd = ['ansible-doc', '-t', 'module', '--json'] + [f'{collection}.{m}' for m in names]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout
    rc, out = call(modules)
    if rc == 0:
        return json.loads(out)
    docs = {}
    for module in modules:
        rc, out = call([module])
        if rc == 0:
            docs.update(json.loads(out))
    return docs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--collection', default='hypervisor.network')
    parser.add_argument('modules', nargs='*', help='module names (default: every plugins/modules/*.py)')
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    modules = args.modules or sorted(
        f[:-3] for f in os.listdir(os.path.join(root, 'plugins', 'modules'))
        if f.endswith('.py') and not f.startswith('_')
    )
    docs = load_docs(args.collection, modules)
    checker = Checker(args.collection, docs)
    for module in modules:
        fqcn = f'{args.collection}.{module}'
        if fqcn not in docs:
            checker.error(fqcn, 'ansible-doc cannot load the documentation (see the ansible-doc check)')
            print(f'  examples {fqcn}: not checked')
            continue
        before = len(checker.errors)
        checker.check_examples(fqcn, docs[fqcn].get('examples'))
        status = 'ok' if len(checker.errors) == before else f'{len(checker.errors) - before} problem(s)'
        print(f'  examples {fqcn}: {status}')
    for err in checker.errors:
        print(f'ERROR: {err}')
    return 1 if checker.errors else 0


if __name__ == '__main__':
    sys.exit(main())
