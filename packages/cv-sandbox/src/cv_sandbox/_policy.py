"""RestrictedPython policy with one extension: augmented assignment of items (``a[mask] += 10``).

Model-written NumPy code does this constantly; RestrictedPython rejects it outright. We rewrite
``a[i] op= v`` to ``a[i] = _inplacevar_(op, a[i], v)`` *before* the normal policy runs, so the store goes
through ``_write_`` and the load through ``_getitem_`` like any other subscript. (``a`` and ``i`` are
evaluated twice, which only matters for expressions with side effects.)
"""

from __future__ import annotations

import ast
import copy

from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations


class ImagePolicy(RestrictingNodeTransformer):
    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:  # noqa: N802 - ast visitor name
        if isinstance(node.target, ast.Subscript):
            load = copy.deepcopy(node.target)
            load.ctx = ast.Load()
            for sub in ast.walk(load):
                if isinstance(
                    sub, ast.Name | ast.Attribute | ast.Subscript | ast.Starred | ast.List | ast.Tuple
                ):
                    sub.ctx = ast.Load()
            copy_locations(load, node.target)
            # Guard the pieces; the helper name itself is ours, so it is not run through the name check.
            load_t = self.visit(load)
            value_t = self.visit(node.value)
            store_t = self.visit(node.target)
            new = ast.Assign(
                targets=[store_t],
                value=ast.Call(
                    func=ast.Name("_inplacevar_", ast.Load()),
                    args=[ast.Constant(IOPERATOR_TO_STR[type(node.op)]), load_t, value_t],
                    keywords=[],
                ),
            )
            copy_locations(new, node)
            ast.fix_missing_locations(new)
            return new
        return super().visit_AugAssign(node)
