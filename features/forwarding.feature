@needs-pbx-sim
Feature: Forwarding and do-not-disturb
  Scenario: Forwarding set, read back, reported and applied
    Given alice is signed in
    And carol is signed in
    When alice forwards all calls to carol
    Then alice sees forwarding to carol
    And alice reads back forwarding to carol
    When the outside caller +14255550200 calls alice
    Then alice sees the call as forwarded because of callForwardImmediate
    And carol sees a call from +14255550200
    And carol's desk phone rings

  Scenario: Do-not-disturb
    Given alice is signed in
    And bob is signed in
    When alice turns do-not-disturb on
    Then alice sees do-not-disturb on
    When bob dials alice
    Then bob sees the call as failed because of doNotDisturb
