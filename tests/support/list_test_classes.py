"""list_test_classes.py FILE: prints the classes of FILE that hold unittest test methods (their
own or inherited from a class of the same file), one a line.

tests/CMakeLists.txt runs it at configure time to give each class its own ctest entry, so a new
class needs no CMake edit. It reads the source and never imports it: configuring must work
without the test environment. Helper base classes without tests are left out (they would run
nothing)."""
import ast
import sys


def test_classes(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def has_tests(node, seen):
        if any(isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test")
               for item in node.body):
            return True
        return any(isinstance(base, ast.Name) and base.id in classes and base.id not in seen
                   and has_tests(classes[base.id], seen | {base.id}) for base in node.bases)

    return [name for name, node in classes.items() if has_tests(node, {name})]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: list_test_classes.py FILE")
    print("\n".join(test_classes(sys.argv[1])))
