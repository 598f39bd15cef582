"""The USP data model and path resolver (unlite/usp/model.py) on a node's memory, no root."""
import types

import pytest

from unlite.usp import model

SM = "Device.SoftwareModules."


class _Changes:
    def get(self, gid):
        return None

    def pending_new(self):
        return []


def _inst(nf, state, fault=None):
    return types.SimpleNamespace(nf=nf, name=nf, netns=f"ns-{nf}", state=state, fault=fault,
                                 fault_detail="gone" if fault else None)


def _node(graphs):
    g = {gid: types.SimpleNamespace(graph=types.SimpleNamespace(doc={"forwarding-graph": {
        "id": gid, "name": gid.upper()}}), instances={i.nf: i for i in insts})
         for gid, insts in graphs.items()}
    return types.SimpleNamespace(graphs=g, failed={}, changes=_Changes(),
                                 switch=types.SimpleNamespace(name="tc"))


def test_snapshot_shapes_graphs_as_dus_and_nfs_as_eus(tmp_path):
    inst = model.Instances(str(tmp_path / "i.json"))
    objs = model.snapshot(_node({"home": [_inst("fw", "Active"), _inst("nat", "Failed",
                                                                       "FailureWhileActive")]}),
                          SM, inst)
    du = objs[SM + "DeploymentUnit.1."]
    assert du["DUID"] == "home" and du["UUID"] == model.du_uuid("home")
    assert du["ExecutionUnitList"] == f"{SM}ExecutionUnit.1,{SM}ExecutionUnit.2"
    assert objs[SM + "ExecutionUnit.2."]["Status"] == "Idle"
    assert objs[SM + "ExecutionUnit.2."]["ExecutionFaultCode"] == "FailureWhileActive"
    assert objs[SM + "ExecutionUnit.2."]["X_UNLITE_State"] == "Failed"
    assert objs[SM + "ExecEnv.1."]["X_UNLITE_SteeringBackend"] == "tc"
    assert model.du_uuid("home") == model.du_uuid("home") != model.du_uuid("office")


def test_instance_numbers_are_stable_and_survive_a_restart(tmp_path):
    f = str(tmp_path / "i.json")
    inst = model.Instances(f)
    model.snapshot(_node({"a": [], "b": []}), SM, inst)
    model.snapshot(_node({"b": []}), SM, inst)              # a deleted: its number not reused
    objs = model.snapshot(_node({"b": [], "c": []}), SM, model.Instances(f))
    assert objs[SM + "DeploymentUnit.2."]["DUID"] == "b"
    assert objs[SM + "DeploymentUnit.3."]["DUID"] == "c"
    (tmp_path / "i.json").write_text("{not json")
    assert model.Instances(f).number("du", "x") == 1       # a bad file: numbered anew


@pytest.fixture
def objs(tmp_path):
    return model.snapshot(_node({"home": [_inst("fw", "Active")], "lab": [_inst("br", "Idle")]}),
                          SM, model.Instances())


def test_resolver_partial_paths_wildcards_and_searches(objs):
    known = model.schema_paths(SM)
    assert [p for p, _ in model.resolve(objs, SM + "DeploymentUnit.", known)] == \
        [SM + "DeploymentUnit.1.", SM + "DeploymentUnit.2."]
    assert model.resolve(objs, SM + "ExecutionUnit.*.Status", known) == \
        [(SM + "ExecutionUnit.1.", {"Status": "Active"}),
         (SM + "ExecutionUnit.2.", {"Status": "Idle"})]
    assert model.resolve(objs, SM + 'DeploymentUnit.[DUID=="lab"].Name', known) == \
        [(SM + "DeploymentUnit.2.", {"Name": "LAB"})]
    assert model.resolve(objs, SM + 'ExecutionUnit.[Status!="Active"&&EUID=="lab.br"].EUID',
                         known) == [(SM + "ExecutionUnit.2.", {"EUID": "lab.br"})]
    assert model.resolve(objs, SM + 'DeploymentUnit.[DUID=="a.b"].', known) == []


def test_max_depth_counts_a_table_and_its_instances_as_one_level(objs):
    def paths(expr, depth):
        return [p[len(SM):] for p, _ in model.resolve(objs, expr, model.schema_paths(SM), depth)]
    assert paths(SM, 1) == [""]
    assert paths(SM, 2) == ["", "ExecEnv.1.", "DeploymentUnit.1.", "DeploymentUnit.2.",
                            "ExecutionUnit.1.", "ExecutionUnit.2."]
    assert paths(SM, 0) == paths(SM, 2)                     # the whole tree is two levels
    assert paths(SM + "DeploymentUnit.", 1) == ["DeploymentUnit.1.", "DeploymentUnit.2."]
    assert paths(SM + "DeploymentUnit.*.", 1) == ["DeploymentUnit.1.", "DeploymentUnit.2."]


@pytest.mark.parametrize("bad,code", [
    (SM + "DeploymentUnit.9.", 7026), (SM + "Nope.", 7026), (SM + "ExecEnv.1.Nope", 7026),
    (SM + 'DeploymentUnit.[DUID=="x".', 7008), (SM + "DeploymentUnit.[DUID=x;rm].", 7008),
    (SM + 'DeploymentUnit.["unclosed].', 7008),
])
def test_resolver_refuses_with_usp_codes(objs, bad, code):
    with pytest.raises(model.PathError) as e:
        model.resolve(objs, bad, model.schema_paths(SM))
    assert e.value.code == code


def test_an_empty_table_is_an_empty_answer(tmp_path):
    objs = model.snapshot(_node({}), SM, model.Instances())
    assert model.resolve(objs, SM + "DeploymentUnit.", model.schema_paths(SM)) == []
    assert model.resolve(objs, model.SUBSCRIPTIONS, model.schema_paths(SM)) == []
